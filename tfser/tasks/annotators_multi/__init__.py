"""Annotators across corpora with corpus-wise weights: the annotators paper's per-annotator models
trained on several corpora at once (one minibatch per corpus per step, the CWW paper's Algorithm
1), each corpus weighted by how badly the model fits its label distributions (CWW Eq. 2-3 with
1 - TVD or the consensus CCC as the fit), tested zero-shot on a held-out corpus.
"""
