"""Replays: runs over stored nights with an id, a state and progress, beside the live night."""
