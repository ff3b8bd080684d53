"""Sentiment and risk scoring: pure functions of text and data, no I/O."""
