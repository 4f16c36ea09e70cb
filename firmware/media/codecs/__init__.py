"""Audio codecs of the media plane (G.711 now; registry, G.722 and L16 follow)."""
