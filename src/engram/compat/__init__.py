"""Compatibility layers: translation of other memory libraries' calls and configs into Engram's."""
