import unittest

import logic


class Delivery(unittest.TestCase):
    def test_the_body_holds_one_id_a_line(self):
        self.assertEqual(logic.body(["a", "b"]), b"a\nb")

    def test_success_refusal_and_outage(self):
        self.assertEqual(logic.verdict(204)[0], "ok")
        self.assertEqual(logic.verdict(422)[0], "reject")
        self.assertEqual(logic.verdict(503)[0], "retry")


if __name__ == "__main__":
    unittest.main()
