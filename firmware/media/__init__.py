"""RTP/RTCP, SRTP, codecs, jitter buffer, players, recorder and mixer."""
