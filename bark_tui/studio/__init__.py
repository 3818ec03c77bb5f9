"""The Textual studio: the app, its messages, the controllers that act for it and the
jobs its workers run."""
