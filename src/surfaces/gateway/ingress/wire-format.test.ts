import { describe, expect, it } from 'vitest';
import { AppError, toAppError } from '../../../core/errors/errors.ts';
import { errorBody, errorHeaders, formatOf } from './wire-format.ts';

describe('formatOf', () => {
  it('tells the five wire formats apart, including the shared /v1', () => {
    expect(formatOf('/v1/chat/completions', {})).toBe('openai');
    expect(formatOf('/v1/models', {})).toBe('openai');
    expect(formatOf('/v1/models', { 'x-goog-api-key': 'k' })).toBe('gemini');
    expect(formatOf('/v1/models?key=k', {})).toBe('gemini');
    expect(formatOf('/v1/models/gemini-pro:generateContent', {})).toBe('gemini');
    expect(formatOf('/v1/models/gpt-4o', {})).toBe('openai');
    expect(formatOf('/v1beta/models', {})).toBe('gemini');
    expect(formatOf('/openai/deployments/x/chat/completions', {})).toBe('azure');
    expect(formatOf('/api/paas/v4/chat/completions', {})).toBe('glm');
    expect(formatOf('/v1/messages', {})).toBe('anthropic');
    expect(formatOf('/v1/messages/count_tokens', {})).toBe('anthropic');
    expect(formatOf('/v1/models', { 'anthropic-version': '2023-06-01' })).toBe('anthropic');
    expect(formatOf('/v1/models/claude', { 'anthropic-version': '2023-06-01' })).toBe('anthropic');
    expect(formatOf('/v1/models/g:countTokens', { 'anthropic-version': '2023-06-01' })).toBe('gemini');
  });
});

describe('errorBody', () => {
  const tooBig = toAppError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
  const limit = new AppError('rate_limited', 'virtual key limit of 2 requests per minute reached', { retryAfter: 30, details: { code: 'rate_limit_exceeded', type: 'requests', limit: 'rpm' } });

  it('renders OpenAI/Azure {error:{message,type,param,code}}', () => {
    expect(errorBody('openai', tooBig)).toEqual({ error: { message: tooBig.message, type: 'invalid_request_error', param: null, code: 'payload_too_large' } });
    expect(errorBody('azure', limit)).toEqual({ error: { message: limit.message, type: 'requests', param: null, code: 'rate_limit_exceeded' } });
    expect(errorHeaders(limit)).toEqual({ 'retry-after': '30', 'x-nexus-limit': 'rpm' });
  });

  it('renders Gemini {error:{code,message,status}}', () => {
    expect(errorBody('gemini', tooBig)).toEqual({ error: { code: 413, message: tooBig.message, status: 'INVALID_ARGUMENT' } });
    expect(errorBody('gemini', limit)).toEqual({ error: { code: 429, message: limit.message, status: 'RESOURCE_EXHAUSTED' } });
    expect(errorBody('gemini', new AppError('internal', 'internal error'))).toEqual({ error: { code: 500, message: 'internal error', status: 'INTERNAL' } });
  });

  it('renders Anthropic {type:"error",error:{type,message}}', () => {
    expect(errorBody('anthropic', tooBig)).toEqual({ type: 'error', error: { type: 'request_too_large', message: tooBig.message } });
    expect(errorBody('anthropic', limit)).toEqual({ type: 'error', error: { type: 'rate_limit_error', message: limit.message } });
    expect(errorBody('anthropic', new AppError('unauthorized', 'x')).error).toMatchObject({ type: 'authentication_error' });
    expect(errorBody('anthropic', new AppError('forbidden', 'x')).error).toMatchObject({ type: 'permission_error' });
    expect(errorBody('anthropic', new AppError('not_found', 'x')).error).toMatchObject({ type: 'not_found_error' });
    expect(errorBody('anthropic', new AppError('bad_gateway', 'x')).error).toMatchObject({ type: 'api_error' });
    expect(errorBody('anthropic', new AppError('validation_failed', 'x')).error).toMatchObject({ type: 'invalid_request_error' });
  });

  it('renders GLM {error:{code:"…",message}} with Zhipu codes', () => {
    expect(errorBody('glm', new AppError('unauthorized', 'x'))).toEqual({ error: { code: '1000', message: 'x' } });
    expect(errorBody('glm', new AppError('not_found', 'x', { details: { code: 'model_not_found' } }))).toEqual({ error: { code: '1211', message: 'x' } });
    expect(errorBody('glm', limit).error).toMatchObject({ code: '1302' });
    expect(errorBody('glm', new AppError('rate_limited', 'x', { details: { limit: 'budget' } })).error).toMatchObject({ code: '1113' });
    expect(errorBody('glm', tooBig).error).toMatchObject({ code: '1214' });
  });
});

describe('errorHeaders', () => {
  it('tells SDKs not to retry a 429 that waiting cannot cure, and leaves the others to Retry-After', () => {
    const spent = new AppError('rate_limited', 'virtual key budget of $1 is spent', { retryAfter: 3600, retryable: false, details: { limit: 'budget' } });
    expect(errorHeaders(spent)).toEqual({ 'retry-after': '3600', 'x-should-retry': 'false', 'x-nexus-limit': 'budget' });
    const rpm = new AppError('rate_limited', 'virtual key limit of 1 requests per minute reached', { retryAfter: 42, retryable: true, details: { limit: 'rpm' } });
    expect(errorHeaders(rpm)).toEqual({ 'retry-after': '42', 'x-nexus-limit': 'rpm' });
  });
});
