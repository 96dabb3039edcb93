import unittest

import logic


class ParsePunches(unittest.TestCase):
    def test_each_line_is_a_punch(self):
        self.assertEqual(logic.parse_punches("7,1750000000\n\n8,1750000060\n"), [("7", 1750000000), ("8", 1750000060)])

    def test_a_bad_line_refuses_the_request(self):
        with self.assertRaises(ValueError):
            logic.parse_punches("7;1750000000")


if __name__ == "__main__":
    unittest.main()
