"""Where the weights come from and how they are read: the model source (local
folder or the hub), safe checkpoint loading, the tokenizer and EnCodec."""
