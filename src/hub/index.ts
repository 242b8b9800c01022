export { type RepoRef, type RepoType, repoFolderName, repoCacheDir } from './cache.js';
export {
  type HubClientOptions,
  type HubClient,
  type RepoInfo,
  type FileMetadata,
  type DownloadResult,
  hubClient,
  getRepoInfo,
  fileMetadata,
  downloadFiles,
  hubDownload,
  resolveUrl,
} from './download.js';
export { HubError, HubUnreachableError, type RetryOptions, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS } from './http.js';
export {
  type DownloadModelOptions,
  downloadModel,
  MODEL_REQUIRED_FILES,
  MODEL_OPTIONAL_FILES,
  MODEL_OFFLINE_HINT,
  TOKENIZER_FILES,
} from './model.js';
export { type HubSettings, hubSettings, defaultHfHome, hubCacheDir, defaultToken, DEFAULT_ENDPOINT } from './settings.js';
