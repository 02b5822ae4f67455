"""Hand-off of hot leads to sales: the hand-off line, the events, their outbox and their
signed webhook delivery; one code for the batch run (`operations`) and the stream
(`stream`, `serving`)."""
