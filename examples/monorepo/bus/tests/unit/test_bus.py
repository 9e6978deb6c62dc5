import unittest

from bus import Bus


class BusTest(unittest.TestCase):
    def test_publish_reaches_the_topic_subscribers_only(self):
        bus, got = Bus(), []
        bus.subscribe("notes.created", got.append)
        bus.subscribe("other", lambda m: got.append("wrong"))
        self.assertEqual(bus.publish("notes.created", "n1"), 1)
        self.assertEqual(got, ["n1"])
