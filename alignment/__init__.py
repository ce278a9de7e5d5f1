"""Turning feedback into better answers: datasets, TRL training, the evaluation gate, adapters.

One concept per module, in the order a run uses them (docs/alignment.md explains the decisions):

* ``config``      – ``AlignmentConfig``: every knob of a run, with help text and per-size defaults
* ``feedback``    – votes and corrections read from SQL, majority resolved, private chats left out
* ``chat_format`` – stored prompts and answers in the trained model's chat template
* ``datasets``    – SFT rows, DPO pairs, KTO rows, the held-out split by question, lineage
* ``model``       – the base model for training: fp32 LoRA on CPU, QLoRA on CUDA
* ``train``       – SFT then DPO and/or KTO with TRL; ``plan_stages`` decides which
* ``progress``    – rich progress display, JSON-lines training log, hook for the job row
* ``evaluate``    – likelihood-based scores of base, active and candidate adapters
* ``regression``  – the fixed regression set (questions the user guide answers)
* ``gate``        – promote or reject
* ``report``      – ``report.png`` and ``summary.md``/``.json`` next to the adapter
* ``registry``    – adapters on disk and in SQL: publish, verify, activate, roll back
* ``pipeline``    – ``retrain``: one run from feedback to a registered adapter
* ``worker``      – claims jobs, heartbeats, recovers abandoned jobs, schedules runs

``alignment`` imports ``storage`` and ``retrieval``, never ``bot``, and reads no environment variables.
"""
