"""The stages: each a short-lived job that finds work, does it and hands it on."""
