// m2m-auth/client: the SDK's token provider (@m2m-auth/sdk/client), kept importable from the server
// package for code written against it.

export * from '@m2m-auth/sdk/client';
