"""What Bark is given: numbers and symbols read aloud (`numbers`), a user's lexicon
of names and jargon (`lexicon`), and the rewriter a script parse applies to each
paragraph (`rewrite`)."""
