"""Voices: the preset catalog, the user's own voices, and the history-prompt
format (`.npz` / hub `.npy`) with its validation. numpy only."""
