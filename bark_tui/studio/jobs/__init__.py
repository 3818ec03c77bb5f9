"""What the studio's workers run: a take, a script, a re-made segment, several takes,
a script on Ray; each reports through messages."""
