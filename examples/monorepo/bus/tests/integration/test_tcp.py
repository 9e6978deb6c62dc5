import os
import socket
import unittest

from bus import Bus, serve


class TcpTest(unittest.TestCase):
    def test_a_line_over_tcp_is_published(self):
        # nothing from Docker reaches a host-only component
        self.assertNotIn("DATABASE_URL", os.environ)
        bus, got = Bus(), []
        bus.subscribe("notes.created", got.append)
        server = serve(bus)
        try:
            with socket.create_connection(server.server_address) as s:
                s.sendall(b"PUB notes.created hello\n")
                self.assertEqual(s.makefile().readline().strip(), "1")
            self.assertEqual(got, ["hello"])
        finally:
            server.shutdown()
            server.server_close()
