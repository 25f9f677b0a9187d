"""Rasa-side extensions: the input normaliser, the intent classifier, the safe REST
channel, and serving fixes (installed on import, see rasa_addons/serving.py)."""
from rasa_addons import serving as _serving

_serving.install()
