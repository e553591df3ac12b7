"""The corpus-wise-weights task (Ahn et al.): leave-one-corpus-out categorical SER."""
