// m2m-auth/verify: the SDK's verifier and middleware (@m2m-auth/sdk/verify), kept importable from
// the server package for code written against it.

export * from '@m2m-auth/sdk/verify';
