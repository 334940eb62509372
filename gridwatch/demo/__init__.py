"""Demo parts: clips of real people made on the spot, and a real RTSP server to serve them."""
