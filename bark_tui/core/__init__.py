"""What the studio and the CLI share, without Textual or torch: folders, settings,
the session, the single-instance guard, script parts and resume, playback, the engine choice."""
