"""Unlearning in a generative model: Selective Amnesia (Heng & Soh 2023) for a conditional VAE, as in seed 004."""
