"""The web page (`r1omni serve`): `analysis` computes what it shows, `app` lays it out."""
