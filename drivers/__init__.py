"""Chip drivers (SLIC, DAA, ISDN framer/HDLC, DECT module, PCM/TDM, LEDs), talking to buses only."""
