// Layer: demo/ui. The current time for relative labels ("12s ago", "overdue", "today"), rounded
// down to `step` ms and re-read every `every` ms: a component re-renders only when the rounded
// value moves, never on every frame.
import { useEffect, useState } from 'react';

export function useClock(step: number, every: number): number {
  const now = () => Math.floor(Date.now() / step) * step;
  const [t, setT] = useState(now);
  useEffect(() => {
    const i = setInterval(() => setT(now()), every);
    return () => clearInterval(i);
  }, [step, every]);
  return t;
}
