"""Tokenizers as the device runs them, and their parity with the tokenizer a model was trained with."""
