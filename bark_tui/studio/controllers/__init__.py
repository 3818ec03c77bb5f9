"""The app's controllers, one per concern (generation, playback, scripts, several takes),
mixed into `BarkApp`; the app's one handler per message calls their parts in order."""
