"""Training and evaluation of CLIP-family models on a catalogue (above the domain:
it reads catalogues through `catalogue`, and models through `embedding`)."""
