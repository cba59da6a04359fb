// The few parts of express 5 (a dependency of the MCP SDK v1, without bundled types) that the
// scan tests' plain-SDK servers use.
declare module 'express' {
  import type { IncomingMessage, Server, ServerResponse } from 'node:http'
  import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
  export interface Request extends IncomingMessage {
    body?: unknown
    auth?: AuthInfo
  }
  export interface Response extends ServerResponse {
    status(code: number): Response
    json(body: unknown): Response
    set(name: string, value: string): Response
  }
  export type NextFunction = (error?: unknown) => void
  export type RequestHandler = (req: Request, res: Response, next: NextFunction) => unknown
  export interface Application {
    use(...handlers: RequestHandler[]): Application
    post(path: string, ...handlers: RequestHandler[]): Application
    get(path: string, ...handlers: RequestHandler[]): Application
    listen(port: number, host: string): Server
  }
  interface Express {
    (): Application
    json(options?: { limit?: string }): RequestHandler
  }
  const express: Express
  export default express
}
