"""The composition root: the one place that reads settings and wires the other packages together.

* ``settings``     – every ``TANYA_*`` / ``SLACK_*`` setting
* ``service``      – ``Tanya``, the application service the CLI and Slack share
* ``adapter_sync`` – the generator kept on the adapter the registry marks active
* ``training``     – settings → the alignment package's configs, the base checkpoint, the launcher
* ``train_launch`` – ``python -m bot.train_launch``, one re-training run under a launcher
* ``errors``       – the exceptions a user can fix, said in one line
* ``cli/``         – the ``tanya`` command; ``slack/`` – the Slack app; ``observability/`` – metrics, logs
"""
