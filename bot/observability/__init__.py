"""What operators watch: Prometheus metrics of the bot and of the worker, and structured log lines.

* ``metrics``        – the bot's metrics (answers, stages, votes, Slack traffic), in their own registry
* ``worker_metrics`` – the training worker's metrics and the wrapper around its job runner
* ``logs``           – text or JSON log lines carrying the Slack event, answer and job ids

Only this package imports ``prometheus_client``: the bot measures around its calls into ``retrieval``
and ``storage``, which know nothing of metrics (docs/observability.md).
"""
