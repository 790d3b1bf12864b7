import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatTable } from '../../scripts/lib/table.js';

test('columns are as wide as their widest cell, two spaces apart, with no trailing blanks', () => {
  assert.equal(
    formatTable(
      ['NAME', 'N', 'NOTE'],
      [
        ['a', 1, 'first'],
        ['longer', 22, ''],
      ],
    ),
    ['NAME    N   NOTE', 'a       1   first', 'longer  22'].join('\n'),
  );
});

test('right alignment, indent, and no header line when there are no headers', () => {
  assert.equal(
    formatTable(
      [],
      [
        ['k', 1.5],
        ['key', 10],
      ],
      { align: ['left', 'right'], indent: 2 },
    ),
    ['  k    1.5', '  key   10'].join('\n'),
  );
});

test('a header without rows prints the header; no colour codes in any case', () => {
  const text = formatTable(['A', 'B'], []);
  assert.equal(text, 'A  B');
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(formatTable(['A'], [['x']]), /\u001b\[/);
});

test('a cell with a line break takes two lines, the other columns staying aligned', () => {
  assert.equal(
    formatTable(
      ['A', 'B'],
      [
        ['x', 'one\ntwo'],
        ['yy', 'z'],
      ],
    ),
    ['A   B', 'x   one', '    two', 'yy  z'].join('\n'),
  );
});
