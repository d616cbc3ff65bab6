export { HttpError, reasonPhrase, type HeaderField } from './grammar.js'
export {
  HTTP1_DEFAULT_LIMITS,
  ResponseParser,
  type BodyKind,
  type Http1Limits,
  type Http1ParserHandler,
  type Http1ParserOptions,
  type MessageHead,
  type RequestHead,
  type ResponseHead,
  type ResponseParserOptions,
} from './parser.js'
export { RequestParser } from './request-parser.js'
export {
  RequestWriter,
  ResponseWriter,
  type Framing,
  type HeaderPairs,
  type RequestHeadInit,
  type ResponseHeadInit,
  type ResponseWriterOptions,
} from './writer.js'
