"""orra's GitHub issues agent on orra-di: triage (label, comment, close duplicates)."""
