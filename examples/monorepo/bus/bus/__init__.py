"""A tiny message bus: topics, subscribers, and a line-based TCP front end. No database, no broker:
its tests run on the host (it has no docker-compose.test.yaml), and phare test never calls Docker for it."""

import socketserver
import threading


class Bus:
    def __init__(self):
        self._subscribers = {}
        self._lock = threading.Lock()

    def subscribe(self, topic, callback):
        with self._lock:
            self._subscribers.setdefault(topic, []).append(callback)

    def publish(self, topic, message):
        with self._lock:
            callbacks = list(self._subscribers.get(topic, []))
        for cb in callbacks:
            cb(message)
        return len(callbacks)


def serve(bus, host="127.0.0.1", port=0):
    """Serves `PUB <topic> <message>` lines; answers with the number of subscribers reached."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for raw in self.rfile:
                parts = raw.decode().rstrip("\n").split(" ", 2)
                if len(parts) == 3 and parts[0] == "PUB":
                    self.wfile.write(f"{bus.publish(parts[1], parts[2])}\n".encode())
                else:
                    self.wfile.write(b"ERR\n")

    server = socketserver.ThreadingTCPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
