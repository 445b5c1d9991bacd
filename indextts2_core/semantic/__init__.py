"""Semantic features: w2v-BERT 2.0 encoder and the MaskGCT semantic codec."""
