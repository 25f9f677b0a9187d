"""Rasa-side extensions: the input normaliser component and the safe REST channel."""
