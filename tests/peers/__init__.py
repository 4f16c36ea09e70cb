"""Drivers for the SIP peers we did not write (pjsua2, SIPp, baresip, linphone), for tests."""
