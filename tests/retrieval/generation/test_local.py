from __future__ import annotations

import threading
from pathlib import Path

import pytest
from haystack.dataclasses import ChatMessage, StreamingChunk

from retrieval.generation.local import LocalChatGenerator
from retrieval.generation.token_budget import ELISION, encode_chat, fit_chat

QUESTION = [ChatMessage.from_user("What is the capital of France?")]


def test_serialization_round_trip(tmp_path: Path) -> None:
    generator = LocalChatGenerator(
        model_path=tmp_path / "ckpt",
        max_new_tokens=64,
        temperature=0.3,
        max_prompt_tokens=900,
        adapters={"v1": str(tmp_path / "v1")},
        active_adapter="v1",
        repetition_penalty=1.15,
        torch_threads=2,
        device="cpu",
    )
    data = generator.to_dict()
    assert data["type"] == "retrieval.generation.local.LocalChatGenerator"
    assert data["init_parameters"] == {
        "model_path": str(tmp_path / "ckpt"),
        "max_new_tokens": 64,
        "temperature": 0.3,
        "max_prompt_tokens": 900,
        "adapters": {"v1": str(tmp_path / "v1")},
        "active_adapter": "v1",
        "repetition_penalty": 1.15,
        "torch_threads": 2,
        "device": "cpu",
    }
    assert LocalChatGenerator.from_dict(data).to_dict() == data


def test_configuration_errors_are_caught_early(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not among the adapters"):
        LocalChatGenerator(model_path=tmp_path, active_adapter="missing")
    with pytest.raises(RuntimeError, match="warm_up"):
        LocalChatGenerator(model_path=tmp_path).run(QUESTION)


@pytest.mark.model
def test_answers_greedily_with_usage_metadata(local_generator: LocalChatGenerator) -> None:
    first = local_generator.run(QUESTION)["replies"][0]
    second = local_generator.run(QUESTION)["replies"][0]
    assert "Paris" in first.text  # the converted weights still know things
    assert first.text == second.text
    meta = first.meta
    assert meta["model"] == "smollm2-135m-instruct"
    assert meta["adapter"] is None
    assert meta["finish_reason"] == "stop"
    expected_prompt = len(
        encode_chat(local_generator._tokenizer, [{"role": "user", "content": QUESTION[0].text}])
    )
    assert meta["usage"]["prompt_tokens"] == expected_prompt
    assert 0 < meta["usage"]["completion_tokens"] <= 24
    assert meta["usage"]["total_tokens"] == expected_prompt + meta["usage"]["completion_tokens"]
    assert meta["timings"]["prompt"] > 0 and meta["timings"]["completion"] > 0, "latency split by stage"


@pytest.mark.model
def test_length_limit_is_reported(local_generator: LocalChatGenerator) -> None:
    reply = local_generator.run(QUESTION, generation_kwargs={"max_new_tokens": 3})["replies"][0]
    assert reply.meta["usage"]["completion_tokens"] == 3
    assert reply.meta["finish_reason"] == "length"


@pytest.mark.model
def test_streams_chunks_that_add_up_to_the_reply(local_generator: LocalChatGenerator) -> None:
    chunks: list[StreamingChunk] = []
    reply = local_generator.run(QUESTION, streaming_callback=chunks.append)["replies"][0]
    content = [chunk for chunk in chunks if chunk.content]
    assert len(content) >= 3
    assert "".join(chunk.content for chunk in content).strip() == reply.text
    assert [chunk.start for chunk in content] == [True] + [False] * (len(content) - 1)
    assert chunks[-1].finish_reason == "stop" and chunks[-1].content == ""
    assert chunks[-1].meta["usage"] == reply.meta["usage"]
    assert chunks[0].component_info.type.endswith("LocalChatGenerator")


@pytest.mark.model
def test_a_failing_callback_stops_generation_and_frees_the_model(local_generator: LocalChatGenerator) -> None:
    seen: list[str] = []

    def flaky(chunk: StreamingChunk) -> None:
        seen.append(chunk.content)
        if len(seen) == 2:
            raise ConnectionError("Slack is down")

    with pytest.raises(ConnectionError, match="Slack is down"):
        local_generator.run(QUESTION, streaming_callback=flaky, generation_kwargs={"max_new_tokens": 200})
    assert len(seen) == 2
    # The lock was released: the next request runs normally.
    assert "Paris" in local_generator.run(QUESTION)["replies"][0].text


@pytest.mark.model
def test_a_prompt_over_budget_is_cut_in_the_middle(
    local_generator: LocalChatGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = "\n\n".join(
        f"[{i}] Report {i}: " + " ".join(f"fact{i}-{j}" for j in range(150)) for i in range(1, 4)
    )
    messages = [
        ChatMessage.from_system("Answer from the sources."),
        ChatMessage.from_user("an earlier question"),
        ChatMessage.from_assistant("an earlier answer"),
        ChatMessage.from_user(f"Sources:\n{sources}\n\nQuestion: Which report mentions fact1-3?"),
    ]
    monkeypatch.setattr(local_generator, "max_prompt_tokens", 300)
    reply = local_generator.run(messages, generation_kwargs={"max_new_tokens": 4})["replies"][0]
    assert reply.meta["prompt_truncated"] is True
    assert reply.meta["usage"]["prompt_tokens"] <= 300
    assert reply.meta["usage"]["completion_tokens"] >= 1


@pytest.mark.model
def test_fit_chat_drops_old_turns_first_then_the_middle_of_the_sources(
    local_generator: LocalChatGenerator,
) -> None:
    tokenizer = local_generator._tokenizer
    sources = "\n\n".join(f"[{i}] Report {i}: " + "lorem ipsum dolor " * 60 for i in range(1, 5))
    chat = [
        {"role": "system", "content": "Answer from the sources."},
        {"role": "user", "content": "an earlier question"},
        {"role": "assistant", "content": "an earlier answer"},
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: What does report 1 say?"},
    ]
    untouched, cut = fit_chat(tokenizer, chat, 10_000)
    assert not cut and untouched == encode_chat(tokenizer, chat)

    without_history = encode_chat(tokenizer, [chat[0], chat[3]])
    ids, cut = fit_chat(tokenizer, chat, len(without_history))
    assert cut and ids == without_history

    ids, cut = fit_chat(tokenizer, chat, 250)
    text = tokenizer.decode(ids)
    assert cut and len(ids) <= 250
    assert "Answer from the sources." in text
    assert "[1] Report 1:" in text
    assert ELISION.strip() in text
    assert "[4] Report 4:" not in text
    assert text.rstrip().endswith("Question: What does report 1 say?<|im_end|>\n<|im_start|>assistant")

    ids, cut = fit_chat(tokenizer, chat, 20)  # below the instructions' own size: still no error
    assert cut and len(ids) == 20


@pytest.mark.model
def test_between_tokens_can_hold_generation_in_its_own_thread(local_generator: LocalChatGenerator) -> None:
    release, held = threading.Event(), threading.Event()
    calls: list[str] = []

    def hold() -> None:
        calls.append(threading.current_thread().name)
        held.set()
        release.wait(timeout=60)

    replies: list[str] = []
    local_generator.between_tokens = hold
    try:
        writer = threading.Thread(
            target=lambda: replies.append(
                local_generator.run(QUESTION, streaming_callback=lambda chunk: None)["replies"][0].text
            )
        )
        writer.start()
        assert held.wait(timeout=60), "generation reached its first step"
        assert calls == ["generate-streaming"] and writer.is_alive(), "held after its first token"
        release.set()
        writer.join(timeout=60)
    finally:
        local_generator.between_tokens = None
        release.set()
    assert replies and "Paris" in replies[0]
    assert len(calls) >= 2, "called again at every later step"
