"""Bad-buzz detection (pure decision core) and alert delivery (outbox, dispatcher)."""
