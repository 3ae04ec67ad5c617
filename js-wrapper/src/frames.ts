// Layer: js-wrapper. The one conversion from an SSE message to the WebSocket frame form the
// engine reads, shared by the engine wrapper and the SSE transport.

/** Splices an SSE message (event name + data text) into a frame with "type", without parsing it. */
export function sseToFrame(type: string, data: string): string {
  const body = data.trim();
  if (!body.startsWith('{')) return JSON.stringify({ type, data: body });
  const rest = body.slice(1).trimStart();
  return '{"type":' + JSON.stringify(type) + (rest.startsWith('}') ? '' : ',') + rest;
}
