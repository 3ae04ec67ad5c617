// Layer: js-wrapper/react (internal). Keeps the latest value of a prop (usually a callback) in
// a ref, so subscriptions can call it without being torn down when its identity changes.
import { useInsertionEffect, useRef } from 'react';
import type { MutableRefObject } from 'react';

export function useLatest<T>(value: T): MutableRefObject<T> {
  const ref = useRef(value);
  // Insertion effects run before layout and passive effects, so a subscription firing in a
  // layout effect already sees the new value; they never run during server rendering.
  useInsertionEffect(() => {
    ref.current = value;
  });
  return ref;
}
