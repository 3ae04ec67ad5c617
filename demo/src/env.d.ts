// Layer: demo. react-dom ships no types and @types/react-dom is not installed; the demo uses
// one function from it.
declare module 'react-dom/client' {
  import type { ReactNode } from 'react';
  export function createRoot(el: Element): { render(node: ReactNode): void; unmount(): void };
}
