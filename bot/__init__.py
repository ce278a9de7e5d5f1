"""The composition root: settings, the ``tanya`` CLI and the Slack app."""
