import unittest

import logic


class WithPrefix(unittest.TestCase):
    def test_the_prefix_goes_in_front(self):
        self.assertEqual(logic.with_prefix("42", "HR-"), "HR-42")

    def test_no_prefix_changes_nothing(self):
        self.assertEqual(logic.with_prefix("42", ""), "42")


if __name__ == "__main__":
    unittest.main()
