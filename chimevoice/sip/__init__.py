"""SIP and RTP. ``endpoint`` is the only module in chimevoice that imports pjsua2."""
