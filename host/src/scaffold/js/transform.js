// {{name}}: a biogate transform plugin. It runs on every event of the routes that list it
// (`transforms = ["{{name}}"]`), in order, before the route's sink.

import { get } from 'biogate:plugin/config@0.1.0';

/// An example: the user id with the `prefix` of the plugin's config.
export function withPrefix(userId, prefix) {
  return prefix + userId;
}

export const transformer = {
  /// Return [event] (changed or not) to pass it on, [] to drop it, several events to split
  /// it; throw { tag: 'reject', val: reason } to dead-letter it, or { tag: 'retry', val:
  /// reason } to have the gateway try again later (order is kept).
  transform(event) {
    if (event.body.tag === 'punch') {
      const punch = event.body.val;
      if (!punch.userId) throw { tag: 'reject', val: 'the punch has no user id' };
      punch.userId = withPrefix(punch.userId, get('prefix') ?? '');
    }
    return [event];
  },
};
