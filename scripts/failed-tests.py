#!/usr/bin/env python3
"""Print, last, what each failed test printed at its end.

    failed-tests.py TESTLOG_JSON

meson prints a failed test's log when the test ends, so in a long run the
failure scrolls far up, out of a log's tail.  This repeats it at the end:
every test meson did not pass, its result and time, the TAP lines that
failed and the test's last lines of output.
"""
import json
import sys

PASSED = ('OK', 'SKIP', 'EXPECTEDFAIL')
TAIL = 15


def main():
    failed = []
    with open(sys.argv[1], encoding='utf-8', errors='replace') as log:
        for line in log:
            test = json.loads(line)
            if test.get('result') not in PASSED:
                failed.append(test)
    for test in failed:
        out = ((test.get('stdout') or '') + (test.get('stderr') or '')).splitlines()
        print(f"== FAILED {test['name']}: {test.get('result')} after "
              f"{test.get('duration', 0):.0f} s, exit {test.get('returncode')}")
        for line in out:
            if line.startswith('not ok') or line.startswith('Bail out'):
                print('   ' + line)
        print(f'-- its last {TAIL} lines:')
        for line in out[-TAIL:]:
            print('   ' + line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
