"""tanya in Slack: a Bolt app served over HTTP or Socket Mode.

Modules, each with one job:

* ``serve`` — builds the runtime (service, Bolt app, job poller) and runs a transport.
* ``app`` / ``context`` — the Bolt ``App`` factory and what every listener shares.
* ``client`` — the Web API client (``SLACK_API_URL``, retries on 429 and 5xx).
* ``server`` / ``socket_mode`` — the HTTP endpoint (with health checks) and Socket Mode.
* ``messages`` / ``answering`` / ``streaming`` — questions in, answers out, streamed into one message.
* ``reactions`` / ``actions`` / ``feedback`` — 👍/👎 and corrections from reactions, buttons and a form.
* ``commands`` / ``admin`` / ``home`` / ``jobs`` / ``charts`` — ``/tanya``, App Home, job updates.
* ``render`` / ``text`` / ``once`` / ``channels`` — Block Kit, Slack text, exactly-once, channel kinds.
* ``ops`` / ``readiness`` / ``instrumentation`` — ``/healthz``, ``/readyz``, ``/metrics``, Slack traffic counts.
* ``reports`` — a training run's report posted to Slack.
"""
